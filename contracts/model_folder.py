"""The files of an exported model folder and of a registry, and the names of the model kinds a card declares."""

MODEL_CARD = "model_card.json"
LABEL_MAP = "label_map.json"
RECIPE_FILE = "text_recipe.json"  # how texts are prepared for the model (recipe.TextRecipe)
TFIDF_FILE = "tfidf.skops"  # a TF-IDF model's scikit-learn pipeline (skops: no code runs on load)
LEGACY_TFIDF_FILE = "tfidf.pkl"  # what older exports wrote: a pickle, refused
TASKS_FILE = "tasks.json"  # a multi-task model's label map of every task, the primary task first
ALIASES = "aliases.json"  # a registry's aliases (production, previous) -> model versions

# the card's model_kind: what trained the folder and what loads it (trainers.kinds holds each one's behaviour)
TRANSFORMER = "transformer"  # an encoder sequence classifier (a prototype head is one too)
MULTITASK = "multitask"  # one encoder with a head per task
TFIDF = "tfidf"  # a TF-IDF linear classifier
CAUSAL_LM = "causal_lm"  # a generative model fine-tuned on prompts and responses
PREFERENCE = "preference"  # a generative model tuned on chosen/rejected answer pairs (DPO or ORPO)
DOMAIN_LM = "domain_lm"  # a causal LM adapted to a domain's documents by continued pre-training

# the families of routes and assets that serve a kind
CLASSIFIER = "classifier"  # labels texts: /predict, batch_predictions
GENERATOR = "generator"  # answers prompts: /generate, /v1/chat/completions, batch_generations

DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"  # what a generation dataset fine-tunes unless it names another
