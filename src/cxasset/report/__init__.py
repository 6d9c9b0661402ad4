"""Rendering: terminal tables now; the HTML report comes with its issue."""
