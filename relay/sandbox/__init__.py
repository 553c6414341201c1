"""relay.sandbox"""
