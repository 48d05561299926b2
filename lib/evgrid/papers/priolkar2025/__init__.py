"""Priolkar & Kunkolienkar (2025): EV charging-station planning, bilevel, Elephant Herding (notebook 03)."""
