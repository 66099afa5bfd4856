"""The A1-P interface against the real runtime: conformance to the standard, notifications."""
