"""medswin.inference"""
