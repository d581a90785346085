"""medswin.data"""
