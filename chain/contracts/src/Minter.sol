// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Manager} from "./Manager.sol";
import {IBondingManager, ILivepeerToken} from "./Interfaces.sol";

/// Holds the bonded LPT and all broker ETH, mints the per-round rewards. Same rules and revert
/// strings as the real Minter; the global supply is the token's total supply (no L1 circulating
/// supply cache on a devnet). With `inflationChange = 0` the inflation stays fixed.
contract Minter is Manager {
    event SetCurrentRewardTokens(uint256 currentMintableTokens, uint256 currentInflation);

    /// Precision of inflation, inflationChange and targetBondingRate (MathUtilsV2).
    uint256 private constant PERC_DIVISOR = 1000000000;

    uint256 public inflation;
    uint256 public inflationChange;
    uint256 public targetBondingRate;
    uint256 public currentMintableTokens;
    uint256 public currentMintedTokens;

    modifier onlyBondingManager() {
        require(msg.sender == registered("BondingManager"), "msg.sender not BondingManager");
        _;
    }

    modifier onlyRoundsManager() {
        require(msg.sender == registered("RoundsManager"), "msg.sender not RoundsManager");
        _;
    }

    modifier onlyBondingManagerOrJobsManager() {
        require(
            msg.sender == registered("BondingManager") || msg.sender == registered("JobsManager"),
            "msg.sender not BondingManager or JobsManager"
        );
        _;
    }

    modifier onlyMinterOrJobsManager() {
        require(
            msg.sender == registered("Minter") || msg.sender == registered("JobsManager"),
            "msg.sender not Minter or JobsManager"
        );
        _;
    }

    constructor(
        address _controller,
        uint256 _inflation,
        uint256 _inflationChange,
        uint256 _targetBondingRate
    ) Manager(_controller) {
        require(_inflation <= PERC_DIVISOR, "_inflation is invalid percentage");
        require(_inflationChange <= PERC_DIVISOR, "_inflationChange is invalid percentage");
        require(_targetBondingRate <= PERC_DIVISOR, "_targetBondingRate is invalid percentage");
        inflation = _inflation;
        inflationChange = _inflationChange;
        targetBondingRate = _targetBondingRate;
    }

    function getController() external view returns (address) {
        return address(controller);
    }

    function setTargetBondingRate(uint256 _targetBondingRate) external onlyControllerOwner {
        require(_targetBondingRate <= PERC_DIVISOR, "_targetBondingRate is invalid percentage");
        targetBondingRate = _targetBondingRate;
        emit ParameterUpdate("targetBondingRate");
    }

    function setInflationChange(uint256 _inflationChange) external onlyControllerOwner {
        require(_inflationChange <= PERC_DIVISOR, "_inflationChange is invalid percentage");
        inflationChange = _inflationChange;
        emit ParameterUpdate("inflationChange");
    }

    /// Mints `currentMintableTokens · fracNum / fracDenom` (at 1e9 precision) to this contract.
    function createReward(
        uint256 _fracNum,
        uint256 _fracDenom
    ) external onlyBondingManager whenSystemNotPaused returns (uint256) {
        uint256 mintAmount = (currentMintableTokens * ((_fracNum * PERC_DIVISOR) / _fracDenom)) / PERC_DIVISOR;
        currentMintedTokens += mintAmount;
        require(currentMintedTokens <= currentMintableTokens, "minted tokens cannot exceed mintable tokens");
        livepeerToken().mint(address(this), mintAmount);
        return mintAmount;
    }

    function trustedTransferTokens(address _to, uint256 _amount) external onlyBondingManager whenSystemNotPaused {
        livepeerToken().transfer(_to, _amount);
    }

    function trustedBurnTokens(uint256 _amount) external onlyBondingManager whenSystemNotPaused {
        livepeerToken().burn(_amount);
    }

    function trustedWithdrawETH(
        address payable _to,
        uint256 _amount
    ) external onlyBondingManagerOrJobsManager whenSystemNotPaused {
        (bool ok, ) = _to.call{value: _amount}("");
        require(ok, "ETH transfer failed");
    }

    function depositETH() external payable onlyMinterOrJobsManager returns (bool) {
        return true;
    }

    /// Hands this Minter's LPT and ETH to a new Minter on the same Controller (system paused).
    /// The token's MINTER_ROLE/BURNER_ROLE must be granted to the new Minter separately.
    function migrateToNewMinter(address _newMinter) external onlyControllerOwner whenSystemPaused {
        require(_newMinter != address(this), "new Minter cannot be current Minter");
        require(_newMinter != address(0), "new Minter cannot be null address");
        require(
            Minter(_newMinter).getController() == address(controller),
            "new Minter Controller must be current Controller"
        );
        ILivepeerToken token = livepeerToken();
        token.transfer(_newMinter, token.balanceOf(address(this)));
        Minter(_newMinter).depositETH{value: address(this).balance}();
    }

    function setCurrentRewardTokens() external onlyRoundsManager whenSystemNotPaused {
        setInflation();
        currentMintableTokens = (getGlobalTotalSupply() * inflation) / PERC_DIVISOR;
        currentMintedTokens = 0;
        emit SetCurrentRewardTokens(currentMintableTokens, inflation);
    }

    function getGlobalTotalSupply() public view returns (uint256) {
        return livepeerToken().totalSupply();
    }

    /// Below the target bonding rate inflation rises by `inflationChange`, above it falls (floor 0).
    function setInflation() internal {
        uint256 supply = getGlobalTotalSupply();
        uint256 bondingRate = 0;
        if (supply > 0) {
            bondingRate = (IBondingManager(registered("BondingManager")).getTotalBonded() * PERC_DIVISOR) / supply;
        }
        if (bondingRate < targetBondingRate) {
            inflation += inflationChange;
        } else if (bondingRate > targetBondingRate) {
            inflation = inflationChange > inflation ? 0 : inflation - inflationChange;
        }
    }

    function livepeerToken() internal view returns (ILivepeerToken) {
        return ILivepeerToken(registered("LivepeerToken"));
    }
}
