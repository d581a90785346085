"""medswin.transforms"""
