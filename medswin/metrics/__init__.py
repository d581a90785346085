"""medswin.metrics"""
