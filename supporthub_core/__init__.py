"""What hub and payments share: errors, tokens, settings, the database pool and migrations."""
