"""sinter4d.experiments"""
