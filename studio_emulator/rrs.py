"""Placeholder (milestone 1)."""
from fastapi import APIRouter
router = APIRouter()
def seed(ctx): pass
def recover(ctx): pass
