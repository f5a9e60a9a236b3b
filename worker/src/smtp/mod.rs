//! The inbound ESMTP listener.
