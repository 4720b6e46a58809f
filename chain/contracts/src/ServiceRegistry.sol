// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Manager} from "./Manager.sol";

/// Where orchestrators publish their service URI. `setServiceURI` has no modifiers (not even the
/// pause check), like the real one.
contract ServiceRegistry is Manager {
    event ServiceURIUpdate(address indexed addr, string serviceURI);

    bytes32 public constant targetContractId = keccak256("ServiceRegistryTarget");

    mapping(address => string) private serviceURIs;

    constructor(address _controller) Manager(_controller) {}

    function setServiceURI(string calldata _serviceURI) external {
        serviceURIs[msg.sender] = _serviceURI;
        emit ServiceURIUpdate(msg.sender, _serviceURI);
    }

    function getServiceURI(address _addr) external view returns (string memory) {
        return serviceURIs[_addr];
    }
}
