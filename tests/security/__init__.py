"""Security tests: hostile input at the intake, rate limits, and what error pages may show."""
