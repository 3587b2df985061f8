"""sinter4d.measurement"""
