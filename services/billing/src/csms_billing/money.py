"""Currencies (ISO 4217) and the rounding of amounts to what a currency can pay.

The cost engine computes exactly (``Decimal``, no rounding); an amount is rounded
once, when it leaves the engine for a driver or a partner (the CDR, the REST
answer, the OCPP message), half up to the currency's minor unit. OCPI 2.2.1
(Tariffs module, note on rounding) leaves rounding to law and contract.
"""

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

# ISO 4217 active codes and their minor units (digits after the decimal point).
# Funds, precious metals and testing codes (X..) are left out but for the CFA/CFP francs
# and the East Caribbean dollars and guilder, which are everyday currencies.
_MINOR_UNITS_2: Final = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)
_MINOR_UNITS_0: Final = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_UNITS_3: Final = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_UNITS_4: Final = "CLF UYW"

MINOR_UNITS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_MINOR_UNITS_2.split(), 2),
    **dict.fromkeys(_MINOR_UNITS_0.split(), 0),
    **dict.fromkeys(_MINOR_UNITS_3.split(), 3),
    **dict.fromkeys(_MINOR_UNITS_4.split(), 4),
}

ZERO: Final = Decimal(0)


def is_currency(code: str) -> bool:
    """An active ISO 4217 code (upper case, as OCPI and OCPP write them)."""
    return code in MINOR_UNITS


def round_amount(amount: Decimal, currency: str) -> Decimal:
    """``amount`` half up to the minor unit of ``currency`` (2 digits when unknown)."""
    quantum = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)
