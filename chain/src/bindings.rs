//! alloy bindings generated from the real Livepeer contract ABIs (`chain/abi/`, copied from the
//! protocol repository's deployments). Every address is resolved through the Controller.

#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    Controller,
    "abi/Controller.json"
);
sol!(
    #[sol(rpc)]
    BondingManager,
    "abi/BondingManager.json"
);
sol!(
    #[sol(rpc)]
    RoundsManager,
    "abi/RoundsManager.json"
);
sol!(
    #[sol(rpc)]
    TicketBroker,
    "abi/TicketBroker.json"
);
sol!(
    #[sol(rpc)]
    ServiceRegistry,
    "abi/ServiceRegistry.json"
);
sol!(
    #[sol(rpc)]
    Minter,
    "abi/Minter.json"
);
sol!(
    #[sol(rpc)]
    LivepeerToken,
    "abi/LivepeerToken.json"
);
