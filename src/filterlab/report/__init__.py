"""The comparison report: metrics in, HTML page, plots and Markdown summary out."""
