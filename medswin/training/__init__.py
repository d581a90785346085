"""medswin.training"""
