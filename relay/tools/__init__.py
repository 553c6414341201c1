"""relay.tools"""
