"""Text processing: normalisation, PII masking, quality filters, deduplication and tokenization."""
