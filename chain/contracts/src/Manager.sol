// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// The Controller as the managers see it.
interface IController {
    function owner() external view returns (address);

    function paused() external view returns (bool);

    function getContract(bytes32 _id) external view returns (address);
}

/// Base of every contract registered with the Controller (like the real `Manager`): it finds the
/// other contracts through the Controller, honours the Controller's pause, and lets the Controller
/// owner set parameters.
abstract contract Manager {
    event SetController(address controller);
    event ParameterUpdate(string param);

    IController public controller;

    modifier onlyController() {
        require(msg.sender == address(controller), "caller must be Controller");
        _;
    }

    modifier onlyControllerOwner() {
        require(msg.sender == controller.owner(), "caller must be Controller owner");
        _;
    }

    modifier whenSystemNotPaused() {
        require(!controller.paused(), "system is paused");
        _;
    }

    modifier whenSystemPaused() {
        require(controller.paused(), "system is not paused");
        _;
    }

    constructor(address _controller) {
        controller = IController(_controller);
    }

    /// Moves this contract to another Controller (called by the old Controller's `updateController`).
    function setController(address _controller) external onlyController {
        controller = IController(_controller);
        emit SetController(_controller);
    }

    /// The address registered under `name` (id = keccak256 of the name, as in the real deployment).
    function registered(string memory _name) internal view returns (address) {
        return controller.getContract(keccak256(bytes(_name)));
    }
}
