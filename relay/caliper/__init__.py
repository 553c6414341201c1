"""relay.caliper"""
