"""The adding problem app (and the offline demo)."""
