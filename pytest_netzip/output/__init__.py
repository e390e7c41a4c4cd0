"""What a run leaves: records, tables, JSON, saved runs, plots, the HTML page and the CLI."""
