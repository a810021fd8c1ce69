"""Tests of the Home-Assistant-free core (custom_components/arcade_pay/core): units and properties."""
