// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IManager} from "./Interfaces.sol";

/// The registry every contract resolves the others through: `getContract(keccak256(name))`.
/// Deployed paused, like the real one; the owner unpauses it once everything is registered.
/// Ownable/Pausable follow the old zeppelin copies the real Controller uses (reverts carry no reason).
contract Controller {
    struct ContractInfo {
        address contractAddress;
        bytes20 gitCommitHash;
    }

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Pause();
    event Unpause();
    event SetContractInfo(bytes32 id, address contractAddress, bytes20 gitCommitHash);

    address public owner;
    bool public paused;

    mapping(bytes32 => ContractInfo) private registry;

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        paused = true;
        emit Pause();
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0));
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function pause() external onlyOwner {
        require(!paused);
        paused = true;
        emit Pause();
    }

    function unpause() external onlyOwner {
        require(paused);
        paused = false;
        emit Unpause();
    }

    function setContractInfo(bytes32 _id, address _contractAddress, bytes20 _gitCommitHash) external onlyOwner {
        registry[_id] = ContractInfo(_contractAddress, _gitCommitHash);
        emit SetContractInfo(_id, _contractAddress, _gitCommitHash);
    }

    function updateController(bytes32 _id, address _controller) external onlyOwner {
        IManager(registry[_id].contractAddress).setController(_controller);
    }

    function getContractInfo(bytes32 _id) public view returns (address, bytes20) {
        ContractInfo storage info = registry[_id];
        return (info.contractAddress, info.gitCommitHash);
    }

    function getContract(bytes32 _id) public view returns (address) {
        return registry[_id].contractAddress;
    }
}
