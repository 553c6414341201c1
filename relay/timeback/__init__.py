"""relay.timeback"""
