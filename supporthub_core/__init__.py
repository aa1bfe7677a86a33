"""What hub and payments share: the pieces of the contract between the payments module
and the hub (CONTRACT section 4) that both sides must implement identically, as pure
functions with no dependency on either package."""
