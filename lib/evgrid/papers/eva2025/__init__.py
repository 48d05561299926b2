"""Paper 2: EV-aggregator scheduling in a day-ahead market, on real prices and sessions."""
