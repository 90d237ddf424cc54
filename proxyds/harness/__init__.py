"""``proxyds evaluate``: does a proxy keep a search space's ranking? Trains every config on the
full data and on proxies, and reports ranking metrics beside random and zero-cost baselines."""
