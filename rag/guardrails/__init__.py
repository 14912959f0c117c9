"""Guardrails: escalation and emotion, planted instructions, PII redaction, grounding checks."""
