"""sinter4d.sintering"""
