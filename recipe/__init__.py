"""The text recipe: normalisation and PII masking of texts, and the recipe a model carries so that every text it
sees is prepared as its training texts were. Imports nothing from the rest of Refinery."""
