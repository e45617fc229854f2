"""The names of the Delta tables in the lake; a data asset's table carries the asset's name."""

RAW_DOCUMENTS = "raw_documents"
CLEAN_DOCUMENTS = "clean_documents"
TOKENIZED_DOCUMENTS = "tokenized_documents"
TRAINING_EXAMPLES = "training_examples"
BATCH_PREDICTIONS = "batch_predictions"
BATCH_GENERATIONS = "batch_generations"  # the production causal LM's answers
MODEL_CANDIDATES = "model_candidates"  # the selection matrix: one row per candidate and version
QUARANTINE = "quarantine"
LABEL_ISSUES = "label_issues"  # suspected label errors and conflicting duplicates of each version
DEDUP_INDEX = "dedup_index"  # MinHash band keys of clean documents, for near-duplicates across versions
CATALOG = "dataset_versions"  # one row per version: its source, files and record counts
SERVICE_PREDICTIONS = "predictions"  # appended by `refinery serve`
FEEDBACK = "feedback"  # true labels, and ratings and corrections of answers, posted to the service
GENERATIONS = "generations"  # every answer `refinery serve` generated, masked
