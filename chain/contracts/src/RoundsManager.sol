// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Manager} from "./Manager.sol";
import {IBondingManager, IMinter} from "./Interfaces.sol";

/// Rounds: a round is `roundLength` blocks; `initializeRound()` (anyone, once per round) records
/// the round's block hash, snapshots the active stake and sets the round's mintable tokens.
/// Same rules, events and revert strings as the real RoundsManager.
contract RoundsManager is Manager {
    event NewRound(uint256 indexed round, bytes32 blockHash);

    uint256 private constant PERC_DIVISOR = 1000000;

    /// What a proxy in front of this contract would report (we deploy without proxies).
    bytes32 public constant targetContractId = keccak256("RoundsManagerTarget");

    uint256 public roundLength;
    uint256 public roundLockAmount;
    uint256 public lastInitializedRound;
    uint256 public lastRoundLengthUpdateRound;
    uint256 public lastRoundLengthUpdateStartBlock;
    mapping(uint256 => bytes32) public blockHashForRound;
    mapping(uint256 => uint256) public lipUpgradeRound;

    constructor(address _controller) Manager(_controller) {}

    function setRoundLength(uint256 _roundLength) external onlyControllerOwner {
        require(_roundLength > 0, "round length cannot be 0");
        if (roundLength == 0) {
            // First time: the round count starts at block 0 with this length.
            roundLength = _roundLength;
            lastRoundLengthUpdateRound = currentRound();
            lastRoundLengthUpdateStartBlock = currentRoundStartBlock();
        } else {
            lastRoundLengthUpdateRound = currentRound();
            lastRoundLengthUpdateStartBlock = currentRoundStartBlock();
            roundLength = _roundLength;
        }
        emit ParameterUpdate("roundLength");
    }

    function setRoundLockAmount(uint256 _roundLockAmount) external onlyControllerOwner {
        require(_roundLockAmount <= PERC_DIVISOR, "round lock amount must be a valid percentage");
        roundLockAmount = _roundLockAmount;
        emit ParameterUpdate("roundLockAmount");
    }

    function setLIPUpgradeRound(uint256 _lip, uint256 _round) external onlyControllerOwner {
        require(lipUpgradeRound[_lip] == 0, "LIP upgrade round already set");
        lipUpgradeRound[_lip] = _round;
    }

    function initializeRound() external whenSystemNotPaused {
        uint256 round = currentRound();
        require(lastInitializedRound < round, "round already initialized");

        lastInitializedRound = round;
        bytes32 hash = blockHash(blockNum() - 1);
        blockHashForRound[round] = hash;
        IBondingManager(registered("BondingManager")).setCurrentRoundTotalActiveStake();
        IMinter(registered("Minter")).setCurrentRewardTokens();

        emit NewRound(round, hash);
    }

    function blockNum() public view returns (uint256) {
        return block.number;
    }

    function blockHash(uint256 _block) public view returns (bytes32) {
        uint256 current = blockNum();
        require(_block < current, "can only retrieve past block hashes");
        require(current < 256 || _block >= current - 256, "can only retrieve hashes for last 256 blocks");
        return blockhash(_block);
    }

    function currentRound() public view returns (uint256) {
        return lastRoundLengthUpdateRound + (blockNum() - lastRoundLengthUpdateStartBlock) / roundLength;
    }

    function currentRoundStartBlock() public view returns (uint256) {
        return lastRoundLengthUpdateStartBlock + (currentRound() - lastRoundLengthUpdateRound) * roundLength;
    }

    function currentRoundInitialized() public view returns (bool) {
        return lastInitializedRound == currentRound();
    }

    function currentRoundLocked() public view returns (bool) {
        uint256 sinceStart = blockNum() - currentRoundStartBlock();
        return sinceStart >= roundLength - (roundLength * roundLockAmount) / PERC_DIVISOR;
    }
}
