"""sinter4d.acquisition"""
