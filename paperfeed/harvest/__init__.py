"""harvest feature."""
