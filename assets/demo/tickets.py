"""A deterministic generator of messy corporate support tickets: the embedded demo data."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml

LABELS: dict[str, list[str]] = {
    "vpn_access": [
        "my vpn keeps dropping every {minutes} minutes when I work from {place}",
        "cannot connect to the vpn since the {weekday} update, it says {error}",
        "the vpn client hangs on 'authenticating' and then times out",
        "vpn tunnel disconnects as soon as I open {app}, please help",
        "remote access through the vpn is extremely slow from {place}",
        "getting {error} from the vpn gateway when connecting from my laptop",
    ],
    "password_reset": [
        "I forgot my password and I'm locked out of {app}",
        "please reset my password, the self-service portal says {error}",
        "my password expired while I was on leave and now I cannot log in",
        "password reset link in the email does not work, it says the token is invalid",
        "need a password reset for {app}, tried {count} times and got locked",
        "how do I change my password for {app}? the old one stopped working",
    ],
    "billing_invoice": [
        "invoice {invoice} was charged twice on our corporate card",
        "we were billed for {count} licences but only use {count2}",
        "please send a corrected invoice for {month}, the VAT number is wrong",
        "the payment for invoice {invoice} failed, can you retry the charge",
        "question about the renewal price on our {month} invoice",
        "credit note requested for invoice {invoice}, the service was cancelled",
    ],
    "hardware_failure": [
        "my laptop screen flickers and goes black after {minutes} minutes",
        "the docking station stopped charging my laptop since {weekday}",
        "keyboard on my laptop has several dead keys after a coffee spill",
        "laptop battery swells and the trackpad no longer clicks",
        "my monitor shows no signal when connected through the dock",
        "hard drive makes clicking noises and the laptop freezes on boot",
    ],
    "software_install": [
        "please install {app} on my workstation, I have manager approval",
        "the installer for {app} fails with {error}",
        "need a licence and installation of {app} for the new project",
        "software center shows {app} as failed, can you push it again",
        "can you upgrade {app} to the latest version on my machine",
        "I need admin rights to install the {app} plugin for our team",
    ],
    "email_delivery": [
        "emails to our supplier bounce back with {error}",
        "I am not receiving external emails since {weekday} morning",
        "outgoing mail is stuck in the outbox with {count} messages",
        "messages from the customer portal land in my junk folder",
        "shared mailbox for the {team} team stopped receiving mail",
        "our newsletter was rejected as spam by several recipients",
    ],
    "printer_issue": [
        "the printer on floor {floor} shows paper jam but there is no paper stuck",
        "cannot print to the {team} printer, jobs stay in the queue",
        "printer prints blank pages since the toner was replaced",
        "the scanner on floor {floor} does not send scans to my email",
        "please add the floor {floor} printer to my laptop",
        "printing from {app} produces garbled characters",
    ],
    "access_request": [
        "please grant me read access to the {team} shared drive",
        "I need access to the {app} project for the {month} release",
        "new joiner in the {team} team needs an account for {app}",
        "request to add me to the {team} distribution list",
        "please give our contractor access to {app} until end of {month}",
        "my access to the {team} folder was removed by mistake",
    ],
    "network_outage": [
        "the whole {team} floor has no network since {minutes} minutes ago",
        "wifi in meeting room {floor}B keeps disconnecting everyone",
        "internet is down at the {place} office, all sites unreachable",
        "network drive is unreachable and {app} cannot load projects",
        "very high packet loss on the office network this morning",
        "ethernet port at my desk on floor {floor} is dead",
    ],
    "data_request": [
        "please export last {month} sales data from {app} as csv",
        "we need a report of all open tickets for the {team} team",
        "could you restore a deleted file from the {team} share, it was there on {weekday}",
        "request for a copy of my personal data under GDPR",
        "need the audit log of {app} for the {month} review",
        "please run the monthly usage report for {count} accounts",
    ],
}

APPS = ["Outlook", "Teams", "SAP", "Salesforce", "Jira", "Excel", "Zoom", "Tableau", "Workday"]
ERRORS = ["error 809", "error 0x80070005", "certificate expired", "access denied", "550 5.1.1"]
PLACES = ["home", "the Lyon office", "a hotel", "the train", "Berlin", "the client site"]
TEAMS = ["finance", "marketing", "legal", "sales", "engineering", "HR"]
MONTHS = ["January", "March", "May", "August", "October", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
GREETINGS = ["", "", "Hi team, ", "Hello, ", "Good morning, ", "Dear support, "]
CLOSINGS = ["", "", " Thanks.", " Thanks in advance!", " Regards, {name}", " Urgent please."]
NAMES = ["Anna", "Marco", "Priya", "Jonas", "Chen", "Fatima", "Louis", "Sara"]
DEMO_DATASET = DatasetDeclaration(
    "tickets",
    description="IT support tickets routed to ten queues (the generated demo corpus)",
    tasks=(Task("queue", "label", tuple(sorted(LABELS)), "quarantine"),),
)
STRAY_LABELS = ["misc", "URGENT", "pasword_reset", "other", "vpn access"]
CONTEXT = [
    "",
    "",
    " It worked fine until {weekday}.",
    " This blocks my work on the {month} close.",
    " Several colleagues in {team} see the same.",
    " I already restarted my laptop twice.",
    " My asset tag is LT-{tag}.",
    " I'm at the {place} this week.",
    " Ticket {ticket} was closed without a fix.",
    " Not urgent but annoying.",
]
# Follow-ups that name no symptom: real queues have them, and no model can place them.
VAGUE = [
    "any update on ticket {ticket}? still not working",
    "same problem again since {weekday}, please call me back",
    "following up on my request from {month}, nothing happened",
    "this is the third time I report this, please escalate",
]

SOURCE_YAML = """\
# Column mapping for this drop: Refinery's own names on the left, the export's on the right.
text_column: body
label_column: category
id_column: ticket_id
"""


@dataclass(frozen=True)
class DemoDefects:
    """How many of each defect the demo corpus carries (exact counts, for tests)."""

    missing_text: int
    empty_text: int
    duplicates: int
    stray_labels: int
    missing_labels: int
    mislabeled: int
    vague: int
    html: int
    too_long: int
    too_short: int
    malformed_csv_lines: int
    malformed_json_lines: int


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        minutes=rng.choice([2, 5, 10, 15, 30]),
        place=rng.choice(PLACES),
        weekday=rng.choice(WEEKDAYS),
        error=rng.choice(ERRORS),
        app=rng.choice(APPS),
        count=rng.randint(2, 40),
        count2=rng.randint(1, 20),
        invoice=f"INV-{rng.randint(10000, 99999)}",
        month=rng.choice(MONTHS),
        team=rng.choice(TEAMS),
        floor=rng.randint(1, 9),
        name=rng.choice(NAMES),
        tag=rng.randint(1000, 9999),
        ticket=f"#{rng.randint(40000, 49999)}",
    )


def _contact(rng: random.Random) -> str:
    name = rng.choice(NAMES).lower()
    if rng.random() < 0.5:
        return f" Reach me at {name}.{rng.randint(1, 99)}@example.com."
    return f" Call me on +44 20 {rng.randint(7000, 7999)} {rng.randint(1000, 9999)}."


def _ticket(i: int, labels: list[str], rng: random.Random, counts: dict[str, int]) -> tuple[str, str]:
    """One ticket's body and label, with the content defects (vague, mislabeled) counted."""
    label = labels[i % len(labels)] if rng.random() < 0.5 else rng.choice(labels)
    if rng.random() < 0.03:
        template, counts["vague"] = rng.choice(VAGUE), counts["vague"] + 1
    else:
        template = rng.choice(LABELS[label]) + rng.choice(CONTEXT)
    body = rng.choice(GREETINGS) + _fill(template, rng) + _fill(rng.choice(CLOSINGS), rng)
    if rng.random() < 0.03:
        label, counts["mislabeled"] = rng.choice([x for x in labels if x != label]), counts["mislabeled"] + 1
    if rng.random() < 0.15:
        body += _contact(rng)
    return body, label


TEXT_DEFECTS = (  # (cumulative probability, defect, what the body becomes)
    (0.01, "missing_text", lambda body: ""),
    (0.02, "empty_text", lambda body: "   \t "),
    (0.05, "html", lambda body: f"<p>{body}</p><br/>&nbsp;Sent from my phone"),
    (0.055, "too_long", lambda body: (body + " ") * 400),
    (0.06, "too_short", lambda body: "?"),
)


def _with_text_defect(body: str, rng: random.Random, counts: dict[str, int]) -> str:
    """The body, broken by at most one planted text defect (counted)."""
    draw = rng.random()
    for below, defect, broken in TEXT_DEFECTS:
        if draw < below:
            counts[defect] += 1
            return broken(body)
    return body


def _with_label_defect(label: str, rng: random.Random, counts: dict[str, int]) -> str:
    """The label, replaced by a stray or an empty one now and then (counted)."""
    draw = rng.random()
    if draw < 0.01:
        counts["stray_labels"] += 1
        return rng.choice(STRAY_LABELS)
    if draw < 0.015:
        counts["missing_labels"] += 1
        return ""
    return label


def generate_tickets(rows: int = 3000, seed: int = 7) -> tuple[list[dict[str, str]], DemoDefects]:
    """Generate `rows` ticket records (strings only) and the defects planted among them."""
    rng = random.Random(seed)
    counts = dict.fromkeys(DemoDefects.__dataclass_fields__, 0)
    records: list[dict[str, str]] = []
    labels = sorted(LABELS)
    for i in range(rows):
        body, label = _ticket(i, labels, rng, counts)
        body = _with_text_defect(body, rng, counts)
        label = _with_label_defect(label, rng, counts)
        records.append({"ticket_id": f"T{100000 + i}", "body": body, "category": label})
    for _ in range(rows // 30):
        twin = dict(rng.choice(records[: rows // 2]))
        if twin["body"].strip():
            twin["ticket_id"] = f"T{100000 + len(records)}"
            records.append(twin)
            counts["duplicates"] += 1
    return records, DemoDefects(**counts)


def _csv_with_malformed_lines(records: list[dict[str, str]], rng: random.Random) -> tuple[str, int]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["ticket_id", "body", "category"], lineterminator="\n")
    writer.writeheader()
    malformed = 0
    for record in records:
        writer.writerow(record)
        if rng.random() < 0.003:
            buffer.write(f"T9{rng.randint(10000, 99999)},broken export line with,too,many,fields\n")
            malformed += 1
    return buffer.getvalue(), malformed


def write_demo_drop(folder: Path, rows: int = 3000, seed: int = 7) -> DemoDefects:
    """Write the demo corpus as one landing drop: a CSV, an NDJSON file and `_source.yaml`."""
    folder.mkdir(parents=True, exist_ok=True)
    records, defects = generate_tickets(rows, seed)
    rng = random.Random(seed + 1)
    split = int(len(records) * 0.85)
    text, malformed_csv = _csv_with_malformed_lines(records[:split], rng)
    (folder / "tickets.csv").write_text(text, encoding="utf-8")
    lines = [json.dumps(record) for record in records[split:]]
    bad_json = 0
    for position in sorted(rng.sample(range(len(lines)), k=min(2, len(lines))), reverse=True):
        lines.insert(position, '{"ticket_id": "T999", "body": "unterminated')
        bad_json += 1
    (folder / "tickets_portal.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "_source.yaml").write_text(SOURCE_YAML)
    return DemoDefects(**{**defects.__dict__, "malformed_csv_lines": malformed_csv, "malformed_json_lines": bad_json})


def write_demo_declaration(datasets_dir: Path) -> Path:
    """Write the demo's declaration, `datasets/tickets.yaml`, unless the folder has one."""
    path = datasets_dir / f"{DEMO_DATASET.name}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(declaration_yaml(DEMO_DATASET, "# The demo dataset, declared as any dataset is.\n"))
    return path
