"""relay.pipeline"""
