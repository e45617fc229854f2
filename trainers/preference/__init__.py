"""Preference tuning of a causal LM: DPO and ORPO on chosen/rejected answer pairs, on the Lightning backend."""
