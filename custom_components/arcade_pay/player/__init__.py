"""What a player sees without logging in: the pages of a cabinet's stable QR code."""
