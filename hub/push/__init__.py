"""Push to closed apps: when a notification or an agent's reply is for a user with no
open socket on any node, it goes to their registered devices through a push service.

- `config`: the VAPID key (RFC 8292) and which endpoints a subscription may name.
- `subscriptions`: what a device registers, validated.
- `providers`: one `PushProvider` per subscription kind (Web Push now; FCM, APNs later).
- `presence`: whether a user has a live socket anywhere in the cluster.
- `payloads`: what a push says (security alerts never say more than "open the app").
- `sender`: a bounded queue and workers with timeouts, retries and backoff.

The use case that ties them together is `hub.services.webpush.PushOut`.
"""
