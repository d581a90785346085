"""medswin.models"""
