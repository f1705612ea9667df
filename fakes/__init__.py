"""Local servers that speak speedtest.net's and X's real protocols.

The tests, the benchmarks and the development scripts all use these, so none of them
ever reaches the real services.
"""
