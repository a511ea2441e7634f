"""Reconciliation: read what Circle and Kit actually hold, compare it with what customers
should have, record the drift, and repair it through the normal sync jobs
(docs/reconciliation.md)."""
