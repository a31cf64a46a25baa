"""The host side of socklab: builds the images and drives the labs.

Runs on the host only (it needs the Docker SDK); nothing in here goes into a
container image.
"""
