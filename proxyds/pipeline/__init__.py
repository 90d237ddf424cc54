"""What ``proxyds build`` runs, one stage a module, in the order data flows:
plan/scan -> probes (train or load) -> score (reference, then train) -> sample -> write."""
