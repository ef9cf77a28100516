"""Journey and analytics queries: the overview, one customer's journey, forgetting a person."""
