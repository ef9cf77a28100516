"""The providers' documented example payloads (from their webhook reference pages), with ids made unique per test."""

from __future__ import annotations

import json
from typing import Any


def sendgrid_batch(tag: str, email: str = "example@test.com") -> list[dict[str, Any]]:
    """SendGrid's Event Webhook example: processed, delivered, open, click, bounce, unsubscribe."""
    common = {"email": email, "timestamp": 1513299569, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
              "category": "cat facts", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"}
    return [
        {**common, "event": "processed", "sg_event_id": f"{tag}-processed"},
        {**common, "event": "delivered", "sg_event_id": f"{tag}-delivered", "response": "250 OK"},
        {**common, "event": "open", "sg_event_id": f"{tag}-open", "sg_machine_open": False,
         "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)",
         "ip": "255.255.255.255"},
        {**common, "event": "open", "sg_event_id": f"{tag}-machine-open", "sg_machine_open": True,
         "useragent": "Mozilla/5.0", "ip": "17.58.0.1"},
        {**common, "event": "click", "sg_event_id": f"{tag}-click", "useragent": "Mozilla/4.0", "ip": "255.255.255.255",
         "url": "http://www.sendgrid.com/", "url_offset": {"index": 0, "type": "html"}},
        {**common, "event": "bounce", "sg_event_id": f"{tag}-bounce", "reason": "500 unknown recipient",
         "status": "5.0.0", "type": "bounce"},
        {**common, "event": "unsubscribe", "sg_event_id": f"{tag}-unsubscribe"},
    ]


def mailgun_opened(tag: str, recipient: str = "alice@example.com") -> dict[str, Any]:
    """Mailgun's ``opened`` event-data example."""
    return {"tags": ["my_tag_1", "my_tag_2"], "timestamp": 1521243339.873676, "id": f"{tag}-Ase7i2zsRYeDXztHGENqRA",
            "recipient": recipient, "event": "opened", "recipient-domain": "example.com", "ip": "50.56.129.169",
            "geolocation": {"country": "US", "region": "CA", "city": "San Francisco"},
            "client-info": {"client-os": "Linux", "device-type": "desktop", "client-name": "Chrome",
                            "client-type": "browser", "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"},
            "message": {"headers": {"message-id": "20130503182626.18666.16540@example.com"}},
            "campaigns": [], "user-variables": {"my_var_1": "Mailgun Variable #1", "my-var-2": "awesome"},
            "log-level": "info"}


def postmark_click(tag: str, recipient: str = "john@example.com") -> dict[str, Any]:
    """Postmark's Click webhook example."""
    return {"RecordType": "Click", "ClickLocation": "HTML",
            "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
            "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
            "Platform": "Desktop", "UserAgent": "Mozilla/5.0 (Macintosh)",
            "OriginalLink": "https://example.com", "Geo": {"CountryISOCode": "RS", "Country": "Serbia"},
            "MessageID": f"{tag}-00000000-0000-0000-0000-000000000000", "Recipient": recipient,
            "ReceivedAt": "2025-05-04T03:02:01Z", "Tag": "welcome-email", "Metadata": {"a_key": "a_value"},
            "MessageStream": "outbound"}


def shopify_order(order_id: int, *, email: str = "jon@example.com", pos: bool = False, location_id: int = 40,
                  total: str = "199.00") -> dict[str, Any]:
    """Shopify's orders/create example (trimmed to the fields Reise reads, plus a few it does not)."""
    return {"id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "email": email,
            "created_at": "2025-03-14T16:22:11-04:00", "currency": "USD", "total_price": total,
            "subtotal_price": total, "financial_status": "paid", "name": "#9999", "order_number": 1234,
            "source_name": "pos" if pos else "web", "location_id": location_id if pos else None,
            "customer": {"id": 115310627314723954, "email": email, "first_name": "John", "last_name": "Smith"},
            "line_items": [{"id": 866550311766439020, "title": "IPod Nano - 8GB", "price": total, "quantity": 1,
                            "sku": "IPOD2008PINK"}]}


def shopify_refund(refund_id: int, order_id: int, amount: str = "41.94") -> dict[str, Any]:
    """Shopify's refunds/create example."""
    return {"id": refund_id, "order_id": order_id, "created_at": "2025-03-15T10:00:00-04:00", "note": "Things",
            "restock": True, "refund_line_items": [],
            "transactions": [{"id": 245135, "order_id": order_id, "kind": "refund", "status": "success",
                              "amount": amount, "currency": "USD", "gateway": "bogus"}]}


def square_payment(event_id: str, payment_id: str, order_id: str, amount: int = 100,
                   status: str = "COMPLETED") -> dict[str, Any]:
    """Square's payment.updated example."""
    return {"merchant_id": "6SSW7HV8K2ST5", "type": "payment.updated", "event_id": event_id,
            "created_at": "2020-02-06T22:14:25.573Z",
            "data": {"type": "payment", "id": payment_id, "object": {"payment": {
                "amount_money": {"amount": amount, "currency": "USD"},
                "total_money": {"amount": amount, "currency": "USD"},
                "created_at": "2020-02-06T21:27:30.792Z", "id": payment_id, "location_id": "S8GWD5R9QB376",
                "order_id": order_id, "receipt_number": "hYy9", "source_type": "CARD", "status": status,
                "updated_at": "2020-02-06T22:14:25.573Z", "version": 4}}}}


def instagram_comment(comment_id: str, user_id: str = "232323232", username: str = "test") -> dict[str, Any]:
    """Meta's Instagram ``comments`` webhook example."""
    return {"object": "instagram", "entry": [{"id": "17841405822304914", "time": 1700000000, "changes": [{
        "field": "comments", "value": {"from": {"id": user_id, "username": username},
                                       "media": {"id": "123123123", "media_product_type": "FEED"},
                                       "id": comment_id, "parent_id": "", "text": "This is an example."}}]}]}


def instagram_mention(comment_id: str) -> dict[str, Any]:
    """Meta's Instagram ``mentions`` webhook example."""
    return {"object": "instagram", "entry": [{"id": "17841405822304914", "time": 1700000100, "changes": [{
        "field": "mentions", "value": {"media_id": "17887498072083520", "comment_id": comment_id}}]}]}


def leadgen(lead_id: str) -> dict[str, Any]:
    """Meta's Page ``leadgen`` webhook example."""
    return {"object": "page", "entry": [{"id": "153125381133", "time": 1438292065, "changes": [{
        "field": "leadgen", "value": {"leadgen_id": lead_id, "page_id": "153125381133", "form_id": "981562781975492",
                                      "adgroup_id": "0", "ad_id": "0", "created_time": 1438292065}}]}]}


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes, as providers send."""
    return json.dumps(doc, separators=(",", ":")).encode()
