"""The filter explorer: every grid variant's model, conv1 snapshots and classic matches in one offline HTML page."""
