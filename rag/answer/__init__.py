"""The answer pipeline: understanding, a router, one stage per kind of turn, checks, finish."""
