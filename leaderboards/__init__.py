"""Leaderboard table definitions (one module per table family) and the reported numbers they show."""
