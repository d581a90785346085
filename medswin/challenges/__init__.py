"""medswin.challenges"""
