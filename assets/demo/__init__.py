"""The embedded demo data: generated support tickets with planted defects."""
